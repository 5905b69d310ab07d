"""Run the XTS simulator: `python -m tradingapp.simulators.xts --port 9200 [--seed 7]`.

Prints one line "xts-sim listening on http://HOST:PORT" when it accepts connections.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from decimal import Decimal  # noqa: E402

from tradingapp.simulators.xts.app import make_server  # noqa: E402
from tradingapp.simulators.xts.faults import FaultError  # noqa: E402
from tradingapp.simulators.xts.simulator import Settings, Simulator  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tradingapp.simulators.xts", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9200)
    p.add_argument("--seed", type=int, default=0, help="random-walk and fault-probability seed")
    p.add_argument("--tick-interval", type=float, default=1.0, help="seconds between price steps; 0 = none")
    p.add_argument("--app-key", default="sim-app-key")
    p.add_argument("--secret-key", default="sim-secret-key")
    p.add_argument("--md-app-key", default="sim-md-key")
    p.add_argument("--md-secret-key", default="sim-md-secret")
    p.add_argument("--session-ttl", type=float, default=86400.0, help="seconds a token lives")
    p.add_argument("--margin-available", default="10000000", help="RMS cash limit per order")
    p.add_argument("--no-rate-limit", action="store_true", help="start with the 10/s and 1/s limits off")
    p.add_argument("--latency-ms", type=int, default=0, help="latency on every route")
    p.add_argument("--ack-delay-ms", type=int, default=0, help="delay before PendingNew/New/fills of a placed order")
    p.add_argument("--faults", default="{}", help="start-up knobs as JSON, the shape POST /_sim/faults takes")
    p.add_argument("--date-style", choices=("iso", "dmy"), default="iso")
    p.add_argument("--no-thousands", action="store_true", help="no thousands separators in prices")
    p.add_argument("--positions-shape", choices=("positionList", "flat"), default="positionList")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    faults = json.loads(args.faults)
    if not isinstance(faults, dict):
        raise FaultError("--faults is a JSON object")
    if args.no_rate_limit:
        faults["rate_limit"] = False
    if args.latency_ms:
        faults.setdefault("latency_ms", {})["*"] = args.latency_ms
    if args.ack_delay_ms:
        faults["ack_delay_ms"] = args.ack_delay_ms
    style = {"date_style": args.date_style, "thousands": not args.no_thousands, "positions_shape": args.positions_shape}
    return Settings(
        seed=args.seed,
        tick_interval=args.tick_interval,
        app_key=args.app_key,
        secret_key=args.secret_key,
        md_app_key=args.md_app_key,
        md_secret_key=args.md_secret_key,
        session_ttl=args.session_ttl,
        faults=faults,
        style=style,
        margin_available=Decimal(args.margin_available),
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.log_level.upper() != "DEBUG":  # the socket.io servers log every emit at INFO
        for name in ("socketio", "engineio", "socketio_v4", "engineio_v3", "geventwebsocket.handler"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        simulator = Simulator(settings_from(args))
    except (ValueError, FaultError) as err:
        print(f"xts-sim: {err}", file=sys.stderr)
        return 2
    server = make_server(simulator, args.host, args.port)
    server.start()
    simulator.start()
    print(f"xts-sim listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
