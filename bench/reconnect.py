"""What a new connection costs a call: `python -m bench.reconnect` (median of pooled vs pool closed first).

Against the local DashScope stand-in on 127.0.0.1 (plain HTTP): the TCP connect and the pool's setup,
not TLS; a real DashScope connection adds the TLS handshake's round trips to this.
"""

from __future__ import annotations

import argparse
import statistics
import time

from handler.ask.transport import DashScopeTransport
from handler.local.standin import DashScopeStandIn

KEY = "sk-bench-reconnect-0001"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reconnect", description=__doc__)
    parser.add_argument("--calls", type=int, default=300, help="calls per median (default: %(default)s)")
    calls = parser.parse_args(argv).calls
    with DashScopeStandIn(api_key=KEY) as standin:
        transport = DashScopeTransport()

        def call() -> None:
            for _ in transport(api_key=KEY, model="qwen-turbo", prompt="hi", stream=True, base_address=standin.url):
                pass

        def median_ms(close_first: bool) -> float:
            took = []
            for _ in range(calls):
                if close_first:
                    for adapter in transport._session.adapters.values():
                        adapter.close()
                began = time.perf_counter()
                call()
                took.append(time.perf_counter() - began)
            return statistics.median(took) * 1000

        for _ in range(20):
            call()  # warm up
        pooled, fresh = median_ms(False), median_ms(True)
        print(f"pooled {pooled:.2f} ms, new connection {fresh:.2f} ms: a reconnect costs {fresh - pooled:.2f} ms")


if __name__ == "__main__":
    main()
