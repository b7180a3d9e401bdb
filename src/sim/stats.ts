/**
 * Statistics used by the simulator's reports and tests (pure): Pearson correlation,
 * chi-square goodness of fit with its p-value (regularised upper incomplete gamma), and a
 * binned chi-square for many small expected counts.
 */

/** Pearson correlation of two equally long samples; NaN if either is constant. */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  if (n !== y.length) throw new RangeError('pearson: samples differ in length');
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : NaN;
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~15 significant digits). */
export function lnGamma(x: number): number {
  const g = 7;
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + g + 0.5;
  for (let i = 1; i < g + 2; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Regularised upper incomplete gamma Q(a, x) = Γ(a, x)/Γ(a) (Numerical Recipes gammq). */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  if (x < a + 1) {
    // series for P(a, x)
    let ap = a;
    let del = 1 / a;
    let sum = del;
    for (let n = 0; n < 10_000; n++) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (Math.abs(del) < Math.abs(sum) * 1e-15) break;
    }
    return Math.max(0, 1 - sum * Math.exp(-x + a * Math.log(x) - lnGamma(a)));
  }
  // continued fraction for Q(a, x) (modified Lentz)
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return Math.min(1, Math.exp(-x + a * Math.log(x) - lnGamma(a)) * h);
}

/** P(X ≥ x) for X ~ chi-square with `dof` degrees of freedom. */
export function chi2Sf(x: number, dof: number): number {
  return dof > 0 ? gammaQ(dof / 2, x / 2) : NaN;
}

export interface Chi2Result {
  chi2: number;
  dof: number;
  p: number;
  bins: number;
}

/**
 * Chi-square goodness of fit of observed counts against expected *proportions*
 * (the expected counts are scaled to the observed total, so dof = bins − 1).
 * Cells are first sorted by expected count and merged, consecutive, into bins whose expected
 * count is at least `minExpected` (5 — the usual validity rule of the chi-square
 * approximation), so many tiny cells (100,000 trainers, a few blocks each) still give a valid
 * test. Cells with zero expectation must have zero observations, else p = 0.
 */
export function binnedChi2(observed: ArrayLike<number>, expected: ArrayLike<number>, minExpected = 5): Chi2Result {
  const n = observed.length;
  let to = 0;
  let te = 0;
  for (let i = 0; i < n; i++) {
    to += observed[i]!;
    te += expected[i]!;
  }
  if (!(te > 0) || !(to > 0)) return { chi2: NaN, dof: 0, p: NaN, bins: 0 };
  const scale = to / te;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => expected[a]! - expected[b]! || a - b);
  let impossible = 0;
  const bo: number[] = [];
  const be: number[] = [];
  let ao = 0;
  let ae = 0;
  for (const i of idx) {
    const e = expected[i]! * scale;
    if (e === 0) {
      impossible += observed[i]!;
      continue;
    }
    ao += observed[i]!;
    ae += e;
    if (ae >= minExpected) {
      bo.push(ao);
      be.push(ae);
      ao = 0;
      ae = 0;
    }
  }
  if (ae > 0) {
    if (be.length) {
      bo[bo.length - 1]! += ao;
      be[be.length - 1]! += ae;
    } else {
      bo.push(ao);
      be.push(ae);
    }
  }
  if (impossible > 0) return { chi2: Infinity, dof: Math.max(1, be.length - 1), p: 0, bins: be.length };
  let chi2 = 0;
  for (let k = 0; k < be.length; k++) chi2 += (bo[k]! - be[k]!) ** 2 / be[k]!;
  const dof = be.length - 1;
  return { chi2, dof, p: dof > 0 ? chi2Sf(chi2, dof) : NaN, bins: be.length };
}

/**
 * Two-sample chi-square homogeneity test on paired count vectors (e.g. wins per trainer under
 * two lottery implementations). Cells with both counts zero are skipped. dof = cells − 1.
 */
export function chi2TwoSample(a: ArrayLike<number>, b: ArrayLike<number>): Chi2Result {
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    na += a[i]!;
    nb += b[i]!;
  }
  let chi2 = 0;
  let cells = 0;
  const N = na + nb;
  for (let i = 0; i < a.length; i++) {
    const t = a[i]! + b[i]!;
    if (t === 0) continue;
    cells++;
    const ea = (t * na) / N;
    const eb = (t * nb) / N;
    chi2 += (a[i]! - ea) ** 2 / ea + (b[i]! - eb) ** 2 / eb;
  }
  const dof = cells - 1;
  return { chi2, dof, p: dof > 0 ? chi2Sf(chi2, dof) : NaN, bins: cells };
}
