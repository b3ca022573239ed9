#!/usr/bin/env pwsh
# Summarises Stryker.NET JSON reports (any under -Reports, as build.ps1 mutation writes them) into a
# Markdown table of scores per engine folder and a list of the surviving mutants, each with the
# reason it may stay alive from alive.tsv (file or wildcard pattern, a fragment of the mutated line's code, a fragment of
# the mutator's name or *, the reason). Survivors without a reason (or with one marked OPEN) are counted.
# Score as Stryker defines it: (killed + timeout) / (killed + timeout + survived + no coverage).
param(
    [Parameter(Mandatory)][string]$Reports,
    [Parameter(Mandatory)][string]$Output,
    [string]$Alive = (Join-Path $PSScriptRoot 'alive.tsv')
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$reasons = @(Get-Content -LiteralPath $Alive | Where-Object { $_ -and -not $_.StartsWith('#') } | ForEach-Object {
    $f = $_ -split "`t"
    if ($f.Count -ne 4) { throw "alive.tsv: expected 4 tab-separated fields, got $($f.Count): $_" }
    [pscustomobject]@{ File = $f[0]; Code = $f[1]; Mutator = $f[2]; Why = $f[3]; Used = $false }
})

function Find-Reason([string]$file, [string]$code, [string]$mutator) {
    foreach ($r in $reasons) {
        if ($file -like $r.File -and $code.Contains($r.Code) -and ($r.Mutator -eq '*' -or $mutator.Contains($r.Mutator))) {
            $r.Used = $true
            return $r.Why
        }
    }
    return $null
}

# Results per engine folder (engine/<Folder>/...), from every report under $Reports; where two reports
# mutated the same folder, the newer report's results count.
$byFolder = [ordered]@{}
$reportFiles = Get-ChildItem -Recurse -File -LiteralPath $Reports -Filter 'mutation-report.json' | Sort-Object LastWriteTime
foreach ($json in $reportFiles) {
    $report = Get-Content -Raw -LiteralPath $json.FullName | ConvertFrom-Json
    $fresh = @{}
    foreach ($file in $report.files.PSObject.Properties) {
        $path = $file.Name -replace '^.*?/engine/', 'engine/'
        if ($path -notmatch '^engine/([^/]+)/') { continue }
        $folder = $Matches[1]
        $source = $file.Value.source -split "`n"
        foreach ($m in $file.Value.mutants) {
            if ($m.status -eq 'Ignored' -and $m.statusReason -eq 'Removed by mutate filter') { continue }
            if (-not $fresh.Contains($folder)) {
                $fresh[$folder] = [pscustomobject]@{
                    Counts = @{ Killed = 0; Timeout = 0; Survived = 0; NoCoverage = 0; CompileError = 0; Ignored = 0; RuntimeError = 0 }
                    Survivors = [System.Collections.Generic.List[object]]::new()
                }
            }
            $r = $fresh[$folder]
            $r.Counts[$m.status] = 1 + $r.Counts[$m.status]
            if ($m.status -in 'Survived', 'NoCoverage') {
                $replacement = ($m.replacement -replace '\s+', ' ')
                if ($replacement.Length -gt 70) { $replacement = $replacement.Substring(0, 67) + '...' }
                $line = $m.location.start.line
                $r.Survivors.Add([pscustomobject]@{
                    Folder = $folder; Where = "$($path):$line"; Status = $m.status; Mutator = $m.mutatorName
                    Replacement = $replacement; Code = $source[$line - 1]; Path = $path; Why = $null
                })
            }
        }
    }
    foreach ($folder in $fresh.Keys) { $byFolder[$folder] = $fresh[$folder] }
}

$rows = @()
$survivors = @()
foreach ($folder in $byFolder.Keys | Sort-Object) {
    $r = $byFolder[$folder]
    foreach ($s in $r.Survivors) { $s.Why = Find-Reason $s.Path $s.Code $s.Mutator; $survivors += $s }
    $c = $r.Counts
    $detected = $c.Killed + $c.Timeout
    $valid = $detected + $c.Survived + $c.NoCoverage
    $score = if ($valid -gt 0) { [math]::Round(100.0 * $detected / $valid, 1) } else { 0 }
    $open = @($r.Survivors | Where-Object { -not $_.Why -or $_.Why.StartsWith('OPEN') }).Count
    $rows += "| engine/$folder | $valid | $($c.Killed) | $($c.Timeout) | $($c.Survived) | $($c.NoCoverage) | $($c.CompileError) | $($c.Ignored) | **$score%** | $open |"
}

$lines = @(
    '# Mutation score of the engine tests',
    '',
    'Written by `dotnet pwsh build.ps1 mutation` (Stryker.NET over the named folders of engine/, each with',
    'the engine tests, `tests/Sbp.Engine.Tests/stryker-config.json`). Score = (killed + timeout) / (killed +',
    'timeout + survived + no coverage); compile errors and ignored mutants do not count. What the surviving',
    'mutants are and why those left alive may stay: the last column below (from tests/mutation/alive.tsv) and',
    'docs/TESTING.md. "unexplained" counts survivors without a reason there or whose reason is marked OPEN.',
    '',
    '| folder | mutants | killed | timeout | survived | no coverage | compile error | ignored | score | unexplained |',
    '|---|---|---|---|---|---|---|---|---|---|'
) + $rows + @('', '## Surviving mutants', '', '| folder | where | status | mutator | replacement | why it may stay alive |', '|---|---|---|---|---|---|')
foreach ($s in $survivors) {
    $why = if ($s.Why) { $s.Why -replace '\|', '\|' } else { '**not explained**' }
    $lines += "| $($s.Folder) | $($s.Where) | $($s.Status) | $($s.Mutator) | ``$($s.Replacement -replace '\|', '\|' -replace '`', "'")`` | $why |"
}
foreach ($r in $reasons | Where-Object { -not $_.Used }) {
    Write-Host "alive.tsv: no surviving mutant matches '$($r.File)' / '$($r.Code)' / '$($r.Mutator)' (killed since? remove the line)"
}
Set-Content -LiteralPath $Output -Value $lines
Write-Host ($rows -join "`n")
