"""Developer tools: the local AWS stack, the meter simulator and the demo. Never imported by a worker."""
