"""``python -m activations``: the property card of every registered activation, as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import sys

import activations
from activations import errors


def build_parser() -> argparse.ArgumentParser:
    parser = errors.Parser(
        prog="python -m activations",
        description="Print the property card of registered activations, computed numerically from each function.",
        epilog="Columns: mean/var/gain under z ~ N(0,1) (gain keeps a layer's output variance); saturated_* is the "
        "fraction of inputs with |f'| < 1% of its maximum under N(0,1) and N(0, 22.4^2); cost_vs_relu is the "
        "median over 5 interleaved rounds of the forward+backward time over ReLU's in the same round, on a 2M-element "
        "tensor (ReLU is 1 by construction).",
    )
    parser.add_argument(
        "spec", nargs="*", help="activation specs (default: every registered name), e.g. elu 'elu(alpha=0.5)'"
    )
    parser.add_argument("--family", help=f"only this family: {', '.join(activations.FAMILIES)}")
    parser.add_argument("--source", help=f"only this source: {', '.join(activations.SOURCES)}")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    fmt.add_argument("--csv", action="store_true", help="CSV on stdout")
    parser.add_argument("--no-timing", action="store_true", help="skip the cost_vs_relu measurement")
    return parser


def _body(args: argparse.Namespace) -> int:
    import pandas as pd

    specs = args.spec or activations.names(family=args.family, source=args.source)
    cards = [activations.card(s).as_dict() for s in specs]
    if not args.no_timing:  # measured together, so that every ratio comes from the same interleaved rounds
        cost = activations.relative_cost(specs)
        for spec, row in zip(specs, cards, strict=True):
            row["cost_vs_relu"] = cost[spec][0]
    table = pd.DataFrame(cards)
    if args.json:
        for row in cards:
            print(errors.json_line(row))
    elif args.csv:
        table.to_csv(sys.stdout, index=False)
    else:
        with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250):
            print(
                table.drop(columns=["family", "source"]).to_string(
                    index=False, float_format=lambda v: f"{v:.4g}", na_rep="n/a"
                )
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    return errors.main(build_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
