global using NUnit.Framework;
global using Sbp.Engine.Tests.Support;
