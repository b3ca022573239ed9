#!/usr/bin/env pwsh
# Summarises Stryker.NET JSON reports (one folder per mutated engine folder, as build.ps1 mutation
# writes them) into a Markdown table of scores and a list of the surviving mutants.
# Score as Stryker defines it: (killed + timeout) / (killed + timeout + survived + no coverage).
param(
    [Parameter(Mandatory)][string]$Reports,
    [Parameter(Mandatory)][string]$Output
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$rows = @()
$survivors = @()
foreach ($dir in Get-ChildItem -Directory -LiteralPath $Reports | Sort-Object Name) {
    $json = Join-Path $dir.FullName 'reports/mutation-report.json'
    if (-not (Test-Path $json)) { continue }
    $report = Get-Content -Raw -LiteralPath $json | ConvertFrom-Json
    $counts = @{ Killed = 0; Timeout = 0; Survived = 0; NoCoverage = 0; CompileError = 0; Ignored = 0; RuntimeError = 0 }
    foreach ($file in $report.files.PSObject.Properties) {
        $path = $file.Name -replace '^.*?/engine/', 'engine/'
        foreach ($m in $file.Value.mutants) {
            $counts[$m.status] = 1 + $counts[$m.status]
            if ($m.status -in 'Survived', 'NoCoverage') {
                $replacement = ($m.replacement -replace '\s+', ' ')
                if ($replacement.Length -gt 70) { $replacement = $replacement.Substring(0, 67) + '...' }
                $survivors += [pscustomobject]@{
                    Folder = $dir.Name; Where = "$($path):$($m.location.start.line)"; Status = $m.status
                    Mutator = $m.mutatorName; Replacement = $replacement
                }
            }
        }
    }
    $detected = $counts.Killed + $counts.Timeout
    $valid = $detected + $counts.Survived + $counts.NoCoverage
    $score = if ($valid -gt 0) { [math]::Round(100.0 * $detected / $valid, 1) } else { 0 }
    $rows += "| engine/$($dir.Name) | $valid | $($counts.Killed) | $($counts.Timeout) | $($counts.Survived) | $($counts.NoCoverage) | $($counts.CompileError) | $($counts.Ignored) | **$score%** |"
}

$lines = @(
    '# Mutation score of the engine tests',
    '',
    'Written by `dotnet pwsh build.ps1 mutation` (Stryker.NET over the named folders of engine/, each with',
    'the engine tests, `tests/Sbp.Engine.Tests/stryker-config.json`). Score = (killed + timeout) / (killed +',
    'timeout + survived + no coverage); compile errors and ignored mutants do not count. What the surviving',
    'mutants are and why those left alive may stay: docs/TESTING.md.',
    '',
    '| folder | mutants | killed | timeout | survived | no coverage | compile error | ignored | score |',
    '|---|---|---|---|---|---|---|---|---|'
) + $rows + @('', '## Surviving mutants', '', '| folder | where | status | mutator | replacement |', '|---|---|---|---|---|')
foreach ($s in $survivors) {
    $lines += "| $($s.Folder) | $($s.Where) | $($s.Status) | $($s.Mutator) | ``$($s.Replacement -replace '\|', '\|' -replace '`', "'")`` |"
}
Set-Content -LiteralPath $Output -Value $lines
Write-Host ($rows -join "`n")
