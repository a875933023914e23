#!/usr/bin/env python3
"""Fit lifetimes' BG/NBD and Gamma-Gamma models on the CDNOW summary and print the
parameters and fit times, as the reference for ciclo's own fit (`ciclo bench`).

Usage:
    python3 -m venv /tmp/clv && /tmp/clv/bin/pip install lifetimes==0.11.3
    /tmp/clv/bin/python scripts/clv_compare.py [--data DIR] [--repeat N] [--json]

By default it reads the two CSV files that ciclo's tests ship in
crates/ciclo-domain/tests/fixtures/ (copied from lifetimes 0.11.3, MIT); they are the same
files as `lifetimes.datasets.load_cdnow_summary()` and
`load_cdnow_summary_data_with_monetary_value()`.

Fit time is the wall-clock time of `.fit(...)` alone (data already loaded), the best of
`--repeat` runs, in milliseconds. lifetimes fits with scipy's BFGS and autograd gradients;
BG/NBD with time rescaled so that max(T) = 10, as ciclo does.
"""

import argparse
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(REPO, "crates", "ciclo-domain", "tests", "fixtures")

# Fader, Hardie & Lee (2005), and the Gamma-Gamma example of lifetimes' documentation.
PUBLISHED = {
    "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    "gamma_gamma": {"p": 6.25, "q": 3.74, "gamma": 15.44},
}


def best_time_ms(fit, repeat):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fit()
        best = min(best, (time.perf_counter() - started) * 1e3)
    return best, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="folder with the CDNOW summary CSV files")
    parser.add_argument("--repeat", type=int, default=5, help="fits to run; the fastest is reported")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()

    try:
        import pandas as pd
        from lifetimes import BetaGeoFitter, GammaGammaFitter
        import lifetimes
    except ImportError as error:
        sys.exit(f"needs lifetimes (pip install lifetimes==0.11.3): {error}")

    summary = pd.read_csv(os.path.join(args.data, "cdnow_customers_summary.csv"), index_col=0)
    spend = pd.read_csv(os.path.join(args.data, "cdnow_customers_summary_with_transactions.csv"), index_col=0)
    spend.columns = ["frequency", "recency", "T", "monetary_value"]
    repeat_buyers = spend[spend["frequency"] > 0]

    bgnbd_ms, bgf = best_time_ms(
        lambda: BetaGeoFitter(penalizer_coef=0.0).fit(summary["frequency"], summary["recency"], summary["T"]),
        args.repeat,
    )
    gamma_gamma_ms, ggf = best_time_ms(
        lambda: GammaGammaFitter(penalizer_coef=0.0).fit(repeat_buyers["frequency"], repeat_buyers["monetary_value"]),
        args.repeat,
    )

    result = {
        "lifetimes_version": lifetimes.__version__,
        "customers": int(len(summary)),
        "repeat_customers": int(len(repeat_buyers)),
        "bgnbd": {name: float(bgf.params_[name]) for name in ["r", "alpha", "a", "b"]},
        "bgnbd_fit_ms": bgnbd_ms,
        "gamma_gamma": {"p": float(ggf.params_["p"]), "q": float(ggf.params_["q"]), "gamma": float(ggf.params_["v"])},
        "gamma_gamma_fit_ms": gamma_gamma_ms,
        "published": PUBLISHED,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"lifetimes {result['lifetimes_version']} on CDNOW: {result['customers']} customers, "
          f"{result['repeat_customers']} with repeat purchases (best of {args.repeat} fits)")
    for model, time_key in [("bgnbd", "bgnbd_fit_ms"), ("gamma_gamma", "gamma_gamma_fit_ms")]:
        fitted = ", ".join(
            f"{name} = {value:.6f} (published {PUBLISHED[model][name]})" for name, value in result[model].items()
        )
        print(f"{model:12s} {fitted}; fit {result[time_key]:.1f} ms")


if __name__ == "__main__":
    main()
