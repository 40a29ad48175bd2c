"""Say which of the services the suite uses are reachable on 127.0.0.1.

    python tests/check_services.py [postgresql|redis|rabbitmq ...]

Prints one line per service and exits 1 when any named (default: all) is
missing, so ``make test`` can say clearly what it could not run.
"""

from __future__ import annotations

import os
import socket
import sys

SERVICES = {
    "postgresql": ("127.0.0.1", 5432),
    "redis": ("127.0.0.1", 6379),
    "rabbitmq": ("127.0.0.1", 5672),
}


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def main(names: list[str]) -> int:
    missing = []
    for name in names or list(SERVICES):
        host, port = SERVICES[name]
        ok = reachable(host, port)
        print(f"service {name:<10} {host}:{port:<5} {'reachable' if ok else 'NOT REACHABLE'}")
        if not ok:
            missing.append(name)
    if missing and os.environ.get("SKYSOLVE_REQUIRE_SERVICES") == "1":
        print(f"SKYSOLVE_REQUIRE_SERVICES=1 and {', '.join(missing)} missing: failing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
