from handler.local.cli import run

run()
