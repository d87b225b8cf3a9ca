"""Deployment tooling that runs on the deploying machine, never on FC (left out by .fcignore)."""
