//! The CLV models against the CDNOW data: the published estimates (Fader, Hardie & Lee 2005)
//! and reference values computed with the Python package lifetimes 0.11.3 (scipy 1.17) on the
//! same files, for predictions and for ₂F₁ (scipy.special.hyp2f1).

use ciclo_domain::analytics::special::hyp2f1;
use ciclo_domain::analytics::{
    assess_clv_data, customer_lifetime_value, fit_bgnbd, fit_bgnbd_detailed, fit_gamma_gamma,
    fit_gamma_gamma_detailed, frequency_spend_correlation, BgNbdParams, ClvSettings,
    DataSufficiency, FitOptions, GammaGammaParams, RfmSummary, SpendSummary, SufficiencyThresholds,
    ThinReason,
};
use std::path::PathBuf;
use std::time::Instant;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// (ID, x, t_x, T) from `cdnow_customers_summary.csv`.
fn cdnow_summary() -> Vec<(u32, RfmSummary)> {
    let mut reader =
        csv::Reader::from_path(fixture("cdnow_customers_summary.csv")).expect("fixture opens");
    reader
        .records()
        .map(|record| {
            let record = record.expect("fixture parses");
            let field = |i: usize| record[i].parse::<f64>().expect("numeric field");
            let summary =
                RfmSummary::new(field(1) as u32, field(2), field(3)).expect("valid summary");
            (field(0) as u32, summary)
        })
        .collect()
}

/// (x, t_x, T, mean repeat-purchase value) from `cdnow_customers_summary_with_transactions.csv`.
fn cdnow_with_spend() -> Vec<(RfmSummary, SpendSummary)> {
    let mut reader =
        csv::Reader::from_path(fixture("cdnow_customers_summary_with_transactions.csv"))
            .expect("fixture opens");
    reader
        .records()
        .map(|record| {
            let record = record.expect("fixture parses");
            let field = |i: usize| record[i].parse::<f64>().expect("numeric field");
            let frequency = field(1) as u32;
            (
                RfmSummary::new(frequency, field(2), field(3)).expect("valid summary"),
                SpendSummary {
                    frequency,
                    average_spend: field(4),
                },
            )
        })
        .collect()
}

fn customers() -> Vec<RfmSummary> {
    cdnow_summary().into_iter().map(|(_, s)| s).collect()
}

fn assert_relative(actual: f64, expected: f64, tolerance: f64, what: &str) {
    let error = (actual - expected).abs() / expected.abs();
    assert!(
        error <= tolerance,
        "{what}: {actual} vs {expected} (relative error {error:e} > {tolerance:e})"
    );
}

/// lifetimes 0.11.3 `BetaGeoFitter().fit(...)` on `cdnow_customers_summary.csv`.
const LIFETIMES_BGNBD: BgNbdParams = BgNbdParams {
    r: 0.24259292827982148,
    alpha: 4.413532265271809,
    a: 0.7928859664406578,
    b: 2.4257523826257374,
};

/// lifetimes 0.11.3 `GammaGammaFitter().fit(...)` on the customers with frequency > 0.
const LIFETIMES_GAMMA_GAMMA: GammaGammaParams = GammaGammaParams {
    p: 6.24880249607099,
    q: 3.7445884609237634,
    gamma: 15.447748064943575,
};

/// lifetimes' `conditional_probability_alive` and
/// `conditional_expected_number_of_purchases_up_to_time` at t = 39, 260, 2000 weeks, at
/// `LIFETIMES_BGNBD`: (ID, x, t_x, T, P(alive), [E[Y(t)]]). ID 157 is the heaviest buyer.
const LIFETIMES_PREDICTIONS: [(u32, u32, f64, f64, f64, [f64; 3]); 4] = [
    (
        1,
        2,
        30.43,
        38.86,
        0.7266091367990596,
        [1.2259104241744068, 4.9349739761030245, 13.696458340345403],
    ),
    (
        2,
        1,
        1.71,
        38.86,
        0.21222738807220765,
        [0.20325062425618798, 0.8618176850169981, 2.547189092036614],
    ),
    (
        3,
        0,
        0.0,
        38.86,
        1.0,
        [0.19478085793947836, 0.9141555596022879, 3.1719044591719685],
    ),
    (
        157,
        29,
        37.71,
        38.0,
        0.9691335940044058,
        [20.05366531949664, 70.78477582844589, 175.47686209083514],
    ),
];
const HORIZONS: [f64; 3] = [39.0, 260.0, 2000.0];

#[test]
fn bgnbd_fit_reproduces_the_published_cdnow_estimates() {
    let data = customers();
    assert_eq!(data.len(), 2357);
    let started = Instant::now();
    let fit = fit_bgnbd_detailed(&data, &FitOptions::default()).expect("CDNOW fits");
    let elapsed = started.elapsed();
    println!(
        "BG/NBD on CDNOW: r = {:.6}, alpha = {:.6}, a = {:.6}, b = {:.6}, LL = {:.2}, {} iterations, {:.2} ms",
        fit.params.r,
        fit.params.alpha,
        fit.params.a,
        fit.params.b,
        fit.log_likelihood,
        fit.iterations,
        elapsed.as_secs_f64() * 1e3
    );
    assert!(fit.converged);
    assert_eq!((fit.customers, fit.repeat_customers), (2357, 946));
    // Fader, Hardie & Lee (2005), section 5: r = 0.243, α = 4.414, a = 0.793, b = 2.426, LL = −9582.4.
    let p = fit.params;
    for (name, actual, published) in [
        ("r", p.r, 0.243),
        ("alpha", p.alpha, 4.414),
        ("a", p.a, 0.793),
        ("b", p.b, 2.426),
    ] {
        assert_eq!(
            format!("{actual:.3}"),
            format!("{published:.3}"),
            "{name} to three decimals"
        );
    }
    assert!(
        (fit.log_likelihood - (-9582.4)).abs() < 0.05,
        "log-likelihood {}",
        fit.log_likelihood
    );
    // Same optimum as lifetimes to far more than three decimals.
    assert_relative(p.r, LIFETIMES_BGNBD.r, 1e-5, "r vs lifetimes");
    assert_relative(p.alpha, LIFETIMES_BGNBD.alpha, 1e-5, "alpha vs lifetimes");
    assert_relative(p.a, LIFETIMES_BGNBD.a, 1e-5, "a vs lifetimes");
    assert_relative(p.b, LIFETIMES_BGNBD.b, 1e-5, "b vs lifetimes");
    assert_eq!(fit_bgnbd(&data), Ok(fit.params));
}

#[test]
fn bgnbd_fit_is_independent_of_time_unit_and_starting_point() {
    let weeks = customers();
    let days: Vec<RfmSummary> = weeks
        .iter()
        .map(|c| RfmSummary {
            frequency: c.frequency,
            recency: c.recency * 7.0,
            age: c.age * 7.0,
        })
        .collect();
    let in_days = fit_bgnbd(&days).expect("fits in days");
    assert_relative(
        in_days.alpha / 7.0,
        LIFETIMES_BGNBD.alpha,
        1e-5,
        "alpha (days → weeks)",
    );
    assert_relative(in_days.r, LIFETIMES_BGNBD.r, 1e-5, "r in days");
    // From (2, −3, 2, −2) L-BFGS alone runs to the a → 0 boundary (LL −9763.7, nobody drops out)
    // and from (3, −3, −3, 3) off to numerical nonsense; the fixed restarts recover the optimum.
    for start in [
        [1.0, 1.0, 1.0, 1.0],
        [-2.0, 1.0, 0.0, 1.0],
        [2.0, -3.0, 2.0, -2.0],
        [3.0, -3.0, -3.0, 3.0],
    ] {
        let options = FitOptions {
            initial_log_params: Some(start),
            ..FitOptions::default()
        };
        let fit = fit_bgnbd_detailed(&weeks, &options).expect("fits from a far start");
        assert!(fit.converged, "from {start:?}");
        assert_relative(
            fit.params.a,
            LIFETIMES_BGNBD.a,
            1e-5,
            &format!("a from {start:?}"),
        );
        assert_relative(
            fit.params.b,
            LIFETIMES_BGNBD.b,
            1e-5,
            &format!("b from {start:?}"),
        );
    }
}

#[test]
fn bgnbd_predictions_match_lifetimes() {
    let by_id = cdnow_summary();
    let fitted = fit_bgnbd(&customers()).expect("CDNOW fits");
    for (id, x, t_x, big_t, alive, expected) in LIFETIMES_PREDICTIONS {
        let customer = by_id
            .iter()
            .find(|(i, _)| *i == id)
            .expect("customer in fixture")
            .1;
        assert_eq!(
            customer,
            RfmSummary {
                frequency: x,
                recency: t_x,
                age: big_t
            }
        );
        // The formulas, at lifetimes' own parameters: agreement to rounding.
        assert_relative(
            LIFETIMES_BGNBD.probability_alive(&customer),
            alive,
            1e-12,
            "P(alive)",
        );
        for (horizon, expected) in HORIZONS.iter().zip(expected) {
            let ours = LIFETIMES_BGNBD
                .expected_purchases(&customer, *horizon)
                .expect("finite");
            assert_relative(
                ours,
                expected,
                1e-10,
                &format!("E[Y({horizon})] of customer {id}"),
            );
            // And at our fitted parameters: the same to the precision of the fit.
            let ours = fitted
                .expected_purchases(&customer, *horizon)
                .expect("finite");
            assert_relative(
                ours,
                expected,
                1e-5,
                &format!("fitted E[Y({horizon})] of customer {id}"),
            );
        }
    }
    // eq. 9 (a new customer), lifetimes' `expected_number_of_purchases_up_to_time`.
    for (horizon, expected) in [(39.0, 1.195016228446194), (78.0, 1.857971703527763)] {
        let ours = LIFETIMES_BGNBD
            .expected_purchases_new_customer(horizon)
            .expect("finite");
        assert_relative(ours, expected, 1e-10, "E[X(t)]");
    }
}

#[test]
fn gamma_gamma_fit_reproduces_the_published_cdnow_estimates() {
    let spend: Vec<SpendSummary> = cdnow_with_spend().into_iter().map(|(_, s)| s).collect();
    let started = Instant::now();
    let fit = fit_gamma_gamma_detailed(&spend, &FitOptions::default()).expect("CDNOW fits");
    let elapsed = started.elapsed();
    println!(
        "Gamma-Gamma on CDNOW: p = {:.6}, q = {:.6}, gamma = {:.6}, LL = {:.2}, {} customers, {} iterations, {:.2} ms",
        fit.params.p,
        fit.params.q,
        fit.params.gamma,
        fit.log_likelihood,
        fit.customers,
        fit.iterations,
        elapsed.as_secs_f64() * 1e3
    );
    assert!(fit.converged);
    assert_eq!(fit.customers, 946);
    // lifetimes' documentation (and Fader & Hardie's note): p = 6.25, q = 3.74, γ = 15.44.
    assert_relative(fit.params.p, 6.25, 0.01, "p");
    assert_relative(fit.params.q, 3.74, 0.01, "q");
    assert_relative(fit.params.gamma, 15.44, 0.01, "gamma");
    assert_relative(
        fit.params.p,
        LIFETIMES_GAMMA_GAMMA.p,
        1e-5,
        "p vs lifetimes",
    );
    assert_relative(
        fit.params.q,
        LIFETIMES_GAMMA_GAMMA.q,
        1e-5,
        "q vs lifetimes",
    );
    assert_relative(
        fit.params.gamma,
        LIFETIMES_GAMMA_GAMMA.gamma,
        1e-5,
        "gamma vs lifetimes",
    );
    assert_eq!(fit_gamma_gamma(&spend), Ok(fit.params));
    let correlation = frequency_spend_correlation(&spend).expect("defined");
    assert_relative(
        correlation,
        0.11388391048600445,
        1e-9,
        "frequency/spend correlation",
    );
}

#[test]
fn spend_and_lifetime_value_match_lifetimes() {
    let data = cdnow_with_spend();
    // lifetimes: (ID, monetary_value, conditional_expected_average_profit,
    // customer_lifetime_value(time=12, discount_rate=0.01, freq="W")) at the parameters above.
    let reference = [
        (1_usize, 22.35, 24.65861618923827, 36.278495763627944),
        (2, 11.77, 18.911479869933782, 4.637466328570688),
        (3, 0.0, 35.17100215250688, 8.34409312180974),
        (157, 26.26, 26.39294766353069, 625.3500337089746),
    ];
    let settings = ClvSettings::weeks(12, 0.01);
    for (id, average_spend, expected_spend, expected_clv) in reference {
        let (customer, spend) = data[id - 1];
        assert_eq!(
            spend.average_spend, average_spend,
            "fixture row of customer {id}"
        );
        let ours = LIFETIMES_GAMMA_GAMMA
            .conditional_expected_average_spend(spend.frequency, average_spend)
            .unwrap();
        assert_relative(ours, expected_spend, 1e-12, "expected spend");
        let clv = customer_lifetime_value(
            &LIFETIMES_BGNBD,
            &LIFETIMES_GAMMA_GAMMA,
            &customer,
            average_spend,
            &settings,
        )
        .expect("defined");
        assert_relative(clv, expected_clv, 1e-10, &format!("CLV of customer {id}"));
    }
}

#[test]
fn cdnow_is_sufficient_and_a_small_sample_is_thin() {
    let data = cdnow_with_spend();
    let summaries: Vec<RfmSummary> = data.iter().map(|(s, _)| *s).collect();
    let spend: Vec<SpendSummary> = data.iter().map(|(_, s)| *s).collect();
    let thresholds = SufficiencyThresholds::default();
    let bgnbd = fit_bgnbd_detailed(&summaries, &FitOptions::default());
    let gamma_gamma = fit_gamma_gamma_detailed(&spend, &FitOptions::default());
    assert_eq!(
        assess_clv_data(&bgnbd, Some(&gamma_gamma), &thresholds),
        DataSufficiency::Sufficient
    );

    let small = &summaries[..300];
    let verdict = assess_clv_data(
        &fit_bgnbd_detailed(small, &FitOptions::default()),
        None,
        &thresholds,
    );
    let DataSufficiency::Thin {
        reason:
            reason @ ThinReason::TooFewRepeatCustomers {
                repeat_customers,
                minimum: 200,
            },
    } = verdict
    else {
        panic!("expected too few repeat customers, got {verdict:?}");
    };
    assert!(repeat_customers < 200);
    assert_eq!(reason.code(), "too_few_repeat_customers");

    let nobody_repeats: Vec<RfmSummary> = summaries
        .iter()
        .copied()
        .filter(|s| s.frequency == 0)
        .collect();
    let verdict = assess_clv_data(
        &fit_bgnbd_detailed(&nobody_repeats, &FitOptions::default()),
        None,
        &thresholds,
    );
    assert!(matches!(
        verdict,
        DataSufficiency::Thin {
            reason: ThinReason::TooFewRepeatCustomers { .. }
        }
    ));

    let not_converged = FitOptions {
        max_iterations: 1,
        gradient_tolerance: 1e-30,
        ..FitOptions::default()
    };
    let verdict = assess_clv_data(
        &fit_bgnbd_detailed(&summaries, &not_converged),
        None,
        &thresholds,
    );
    assert!(
        matches!(
            verdict,
            DataSufficiency::Thin {
                reason: ThinReason::FitNotConverged { .. }
            }
        ),
        "{verdict:?}"
    );
}

#[test]
fn hyp2f1_matches_scipy() {
    // (a, b, c, z, scipy.special.hyp2f1(a, b, c, z)); z up to 0.9999, c−a−b integer and not,
    // large parameters as for heavy buyers, and negative z.
    let reference = [
        (1.5, 2.5, 3.7, 0.3, 1.4214419569129735),
        (0.24, 2.43, 2.22, 0.5, 1.2046435919758665),
        (2.24, 4.43, 4.22, 0.95, 1341.3220668034787),
        (0.24, 2.43, 2.22, 0.999, 10.946671985886603),
        (30.2, 32.4, 32.2, 0.9, 2.482826138244881e+30),
        (30.2, 32.4, 32.2, 0.97, 1.9500653461007037e+46),
        (0.5, 0.5, 1.5, -0.8, 0.8997031444420005),
        (0.3, 1.7, 2.0, 0.99, 2.490393176895818),
        (1.2, 0.4, 0.6, 0.93, 10.920956054065487),
        (3.0, 2.0, 1.0, 0.95, 463999.9999999983),
        (0.25, 2.5, 3.75, 0.9999, 1.4675616784933998),
        (2.0, 3.0, 5.0, 0.5, 2.1685173350190006),
    ];
    for (a, b, c, z, expected) in reference {
        let ours = hyp2f1(a, b, c, z).expect("converges");
        assert_relative(ours, expected, 1e-11, &format!("2F1({a}, {b}; {c}; {z})"));
    }
}

#[test]
fn hyp2f1_matches_mpmath_on_bgnbd_shaped_arguments() {
    // 400 random (r+x, b+x, a+b+x−1, z) as eq. 10 produces them, x up to 60 and z up to
    // 1 − 10⁻⁵, with values from mpmath at 40 digits (see fixtures/README.md).
    let mut reader = csv::Reader::from_path(fixture("hyp2f1_mpmath.csv")).expect("fixture opens");
    let mut worst = 0.0_f64;
    let mut rows = 0;
    for record in reader.records() {
        let record = record.expect("fixture parses");
        let field = |i: usize| record[i].parse::<f64>().expect("numeric field");
        let (a, b, c, z, expected) = (field(0), field(1), field(2), field(3), field(4));
        let ours = hyp2f1(a, b, c, z).expect("converges");
        let error = ((ours - expected) / expected).abs();
        assert!(
            error < 1e-11,
            "2F1({a}, {b}; {c}; {z}) = {ours}, mpmath {expected}"
        );
        worst = worst.max(error);
        rows += 1;
    }
    assert_eq!(rows, 400);
    println!("2F1 vs mpmath: worst relative error {worst:e} over {rows} arguments");
}
