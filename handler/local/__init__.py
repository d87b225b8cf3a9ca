"""Local tools: the CLI, the token calculator and the stand-ins of DashScope and OSS. Not shipped to FC."""
