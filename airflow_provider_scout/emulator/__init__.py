"""Artifactory emulator: a test double of Artifactory's REST and Docker registry APIs, with fixture images."""
