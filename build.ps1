#!/usr/bin/env pwsh
# Build tasks. Run via the local tool: dotnet tool restore; dotnet pwsh build.ps1 <task>
param(
    [Parameter(Position = 0)][string]$Task = 'build',
    [string]$Configuration = 'Release',
    # publish-gpu: where the kit goes (default bin/gpu-kit, git-ignored) and an optional --artifacts-path for its build.
    [string]$Output = '',
    [string]$ArtifactsPath = '',
    # mutation: the engine folders whose code Stryker mutates (each run with the engine tests).
    [string[]]$Mutate = @('Ops', 'Stochastic', 'Autograd')
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

# The GPU run kit (kernels/Sbp.GpuKit): a NativeAOT linux-x64 `sbp-gpu` (needs gcc or clang here; the
# GPU machine needs no .NET) plus run.sh, in bin/gpu-kit/. Fails when the folder reaches the 64 MiB that
# may travel to a GPU machine. Prints the publish time and size.
function Invoke-PublishGpu {
    $kitLimit = 64MB
    $out = if ($Output) { $Output } else { Join-Path $PSScriptRoot 'bin/gpu-kit' }
    if (-not (Get-Command gcc -ErrorAction SilentlyContinue) -and -not (Get-Command clang -ErrorAction SilentlyContinue)) {
        Write-Host 'publish-gpu: NativeAOT links with gcc or clang and neither is on PATH (Debian: apt-get install gcc).'
        exit 1
    }
    if (Test-Path $out) { Remove-Item -Recurse -Force $out }
    $publishArgs = @('publish', 'kernels/Sbp.GpuKit/Sbp.GpuKit.csproj', '-c', $Configuration, '-r', 'linux-x64', '-p:PublishAot=true', '-o', $out)
    if ($ArtifactsPath) { $publishArgs += @('--artifacts-path', $ArtifactsPath) }
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    Invoke-Dotnet @publishArgs
    $watch.Stop()
    $files = @(Get-ChildItem -Path $out -Recurse -File)
    $bytes = ($files | Measure-Object -Property Length -Sum).Sum
    $program = Join-Path $out 'sbp-gpu'
    if (-not (Test-Path $program)) {
        Write-Host "publish-gpu: $program is missing after the publish."
        exit 1
    }
    $mib = [math]::Round($bytes / 1MB, 2)
    $seconds = [math]::Round($watch.Elapsed.TotalSeconds, 1)
    Write-Host "publish-gpu: $out holds $($files.Count) files, $mib MiB ($bytes bytes), published in $seconds s"
    if ($bytes -ge $kitLimit) {
        Write-Host "publish-gpu: the kit is $mib MiB, over the 64 MiB that may travel to a GPU machine."
        exit 1
    }
    Write-Host "publish-gpu: on a GPU machine run: OUT=<dir> bash $out/accept.sh   (all in one process: $out/run.sh; options: $program --help)"
}

# The packages: Sbp.Engine, Sbp.Models and the sbp tool (with .snupkg symbols) in bin/packages/ (or -Output),
# at the version of version.props. The folder is emptied first so it holds exactly this build's packages.
function Invoke-Pack {
    $out = if ($Output) { $Output } else { Join-Path $PSScriptRoot 'bin/packages' }
    if (Test-Path $out) { Remove-Item -Recurse -Force $out }
    Invoke-Dotnet pack $Solution -c $Configuration -o $out
    foreach ($file in Get-ChildItem -Path $out -File | Sort-Object Name) {
        Write-Host ("pack: {0} ({1:N0} bytes)" -f $file.Name, $file.Length)
    }
}

# Mutation testing (outside CI: about 40 minutes per folder on 2 cores): one Stryker.NET run mutates
# the folders of engine/ named by -Mutate, runs the engine tests against every mutant, and writes the
# scores and the surviving mutants (with their reasons from tests/mutation/alive.tsv) to
# benchmarks/results/mutation.md. Reports of earlier runs under TestResults/mutation count for the
# folders this run does not mutate; HTML and JSON reports under TestResults/mutation/<folders>.
function Invoke-Mutation {
    Invoke-Dotnet tool restore
    $out = Join-Path $PSScriptRoot 'TestResults/mutation'
    $run = Join-Path $out ($Mutate -join '+')
    $filters = foreach ($folder in $Mutate) { '--mutate'; "**/$folder/**/*.cs" }
    Push-Location (Join-Path $PSScriptRoot 'tests/Sbp.Engine.Tests')
    & dotnet stryker --config-file stryker-config.json @filters --output $run
    $code = $LASTEXITCODE
    Pop-Location
    if ($code -ne 0) { Write-Host "stryker on engine/$($Mutate -join ', engine/') failed with exit code $code"; exit $code }
    & (Join-Path $PSScriptRoot 'tests/mutation/summary.ps1') -Reports $out -Output (Join-Path $PSScriptRoot 'benchmarks/results/mutation.md')
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

# Task table: name -> script block. Add new tasks here (bench, publish-gpu, ...).
$Tasks = [ordered]@{
    'build'     = { Invoke-Build }
    'test'      = { Invoke-Test }
    'ptx-check' = { Invoke-PtxCheck }
    'publish-gpu' = { Invoke-PublishGpu }
    'pack'      = { Invoke-Pack }
    'mutation'  = { Invoke-Mutation }
}

if (-not $Tasks.Contains($Task)) {
    Write-Host "unknown task '$Task'. Tasks:"
    foreach ($name in $Tasks.Keys) { Write-Host "  $name" }
    exit 1
}

& $Tasks[$Task]
exit 0
