"""Developer tooling that needs Ape (deploying, the local demo). The run-time SDK and relayer never import it."""
