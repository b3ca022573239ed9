#!/usr/bin/env pwsh
# Build tasks. Run via the local tool: dotnet tool restore; dotnet pwsh build.ps1 <task>
param(
    [Parameter(Position = 0)][string]$Task = 'build',
    [string]$Configuration = 'Release'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
Set-Location $PSScriptRoot

$Solution = 'Engine.sln'

function Invoke-Dotnet {
    & dotnet @args
    if ($LASTEXITCODE -ne 0) {
        Write-Host "dotnet $($args -join ' ') failed with exit code $LASTEXITCODE"
        exit $LASTEXITCODE
    }
}

function Invoke-Build {
    Invoke-Dotnet build $Solution -c $Configuration
}

function Invoke-Test {
    $results = Join-Path $PSScriptRoot 'TestResults'
    if (Test-Path $results) { Remove-Item -Recurse -Force $results }

    & dotnet test $Solution -c $Configuration --logger 'trx;LogFileName=results.trx' --results-directory $results
    $testExit = $LASTEXITCODE

    $passed = 0
    $failed = 0
    $trxFiles = @(Get-ChildItem -Path $results -Recurse -Filter '*.trx' -ErrorAction SilentlyContinue)
    foreach ($trx in $trxFiles) {
        [xml]$doc = Get-Content -Raw $trx.FullName
        $counters = $doc.GetElementsByTagName('Counters') | Select-Object -First 1
        if ($null -ne $counters) {
            $passed += [int]$counters.GetAttribute('passed')
            $failed += [int]$counters.GetAttribute('failed')
        }
    }

    $code = $testExit
    if ($code -eq 0 -and ($failed -gt 0 -or $trxFiles.Count -eq 0 -or ($passed + $failed) -eq 0)) { $code = 1 }
    Write-Host "$passed passed, $failed failed"
    exit $code
}

# Task table: name -> script block. Add new tasks here (ptx-check, bench, publish-gpu, ...).
$Tasks = [ordered]@{
    'build' = { Invoke-Build }
    'test'  = { Invoke-Test }
}

if (-not $Tasks.Contains($Task)) {
    Write-Host "unknown task '$Task'. Tasks:"
    foreach ($name in $Tasks.Keys) { Write-Host "  $name" }
    exit 1
}

& $Tasks[$Task]
exit 0
