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

    & dotnet test $Solution -c $Configuration --logger trx --results-directory $results
    $testExit = $LASTEXITCODE

    $passed = 0
    $failed = 0
    $trxFiles = @(Get-ChildItem -Path $results -Recurse -Filter '*.trx' -ErrorAction SilentlyContinue)
    foreach ($trx in $trxFiles) {
        [xml]$doc = Get-Content -Raw -LiteralPath $trx.FullName
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

# Assembles every kernels/*.ptx with ptxas 11.8 (fetched once into a cache folder) for sm_80 and
# sm_90; fails on errors, spills, local memory or stack frames; writes kernels/RESOURCES.md.
function Invoke-PtxCheck {
    & bash (Join-Path $PSScriptRoot 'kernels/ptx-check.sh')
    if ($LASTEXITCODE -ne 0) {
        Write-Host "ptx-check failed with exit code $LASTEXITCODE"
        exit $LASTEXITCODE
    }
}

# Task table: name -> script block. Add new tasks here (bench, publish-gpu, ...).
$Tasks = [ordered]@{
    'build'     = { Invoke-Build }
    'test'      = { Invoke-Test }
    'ptx-check' = { Invoke-PtxCheck }
}

if (-not $Tasks.Contains($Task)) {
    Write-Host "unknown task '$Task'. Tasks:"
    foreach ($name in $Tasks.Keys) { Write-Host "  $name" }
    exit 1
}

& $Tasks[$Task]
exit 0
