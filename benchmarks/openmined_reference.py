"""The openmined-psi reference process of the PSI benchmark.

Runs in the reference virtual environment (``.venv-ref``), which holds only
``openmined-psi``, so it uses nothing but the standard library besides it:
``python benchmarks/openmined_reference.py guest.csv host.csv out.json``.
Client and server run in this one process, single-threaded (the package has
no threading of its own); the time includes reading both CSV files.
"""

import csv
import json
import sys
import time


def read_ids(path: str) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        column = next(reader).index("id")
        return [row[column] for row in reader]


def main(guest_csv: str, host_csv: str, out: str) -> None:
    started = time.perf_counter()
    import private_set_intersection.python as openmined

    guest, host = read_ids(guest_csv), read_ids(host_csv)
    client = openmined.client.CreateWithNewKey(True)
    server = openmined.server.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(0.0, len(guest), host, openmined.DataStructure.RAW)
    response = server.ProcessRequest(client.CreateRequest(guest))
    intersection = client.GetIntersection(setup, response)
    result = {"intersection": len(intersection), "seconds": time.perf_counter() - started}
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main(*sys.argv[1:4])
