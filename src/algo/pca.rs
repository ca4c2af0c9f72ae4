//! Principal components of a small set of points (task embeddings: tens to hundreds of points
//! of a few values each), for drawing them in two dimensions. The covariance matrix is
//! diagonalised by cyclic Jacobi rotations: exact to rounding for the sizes met here, and no
//! linear-algebra crate is needed.

/// The points projected on their leading principal components.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// Each point's coordinates on the kept components (as many as asked for; a component the
    /// data does not have is 0).
    pub points: Vec<Vec<f64>>,
    /// The kept components' unit directions, in the input's coordinates.
    pub components: Vec<Vec<f64>>,
    /// The share of the total variance each kept component explains (0 when the points do not
    /// vary at all).
    pub explained: Vec<f64>,
}

/// Sweeps of Jacobi rotations at most; each sweep squares the off-diagonal mass, so a few
/// suffice, and the loop ends early when it is gone.
const SWEEPS: usize = 64;

/// `points` (rows of equal length) centred and projected on their first `k` principal
/// components, largest variance first. Each component's sign is fixed so that its largest
/// entry (in absolute value) is positive: the same data always gives the same picture.
pub fn project(points: &[Vec<f64>], k: usize) -> Projection {
    let n = points.len();
    let d = points.first().map_or(0, Vec::len);
    let nf = n.max(1) as f64;
    let mean: Vec<f64> = (0..d)
        .map(|j| points.iter().map(|p| p[j]).sum::<f64>() / nf)
        .collect();
    let mut cov = vec![vec![0.0; d]; d];
    for p in points {
        for i in 0..d {
            for j in 0..d {
                cov[i][j] += (p[i] - mean[i]) * (p[j] - mean[j]) / nf;
            }
        }
    }
    let (values, vectors) = eigen_symmetric(cov);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
    let mut components = Vec::with_capacity(k);
    let mut explained = Vec::with_capacity(k);
    for c in 0..k {
        match order.get(c) {
            Some(&i) => {
                let mut v: Vec<f64> = (0..d).map(|r| vectors[r][i]).collect();
                let biggest = v
                    .iter()
                    .copied()
                    .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
                if biggest < 0.0 {
                    v.iter_mut().for_each(|x| *x = -*x);
                }
                components.push(v);
                explained.push(if total > 0.0 {
                    values[i].max(0.0) / total
                } else {
                    0.0
                });
            }
            None => {
                components.push(vec![0.0; d]);
                explained.push(0.0);
            }
        }
    }
    let points = points
        .iter()
        .map(|p| {
            components
                .iter()
                .map(|c| (0..d).map(|j| (p[j] - mean[j]) * c[j]).sum())
                .collect()
        })
        .collect();
    Projection {
        points,
        components,
        explained,
    }
}

/// Eigenvalues and eigenvectors (the columns of the second matrix) of a symmetric matrix.
fn eigen_symmetric(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let d = a.len();
    let mut v: Vec<Vec<f64>> = (0..d)
        .map(|i| (0..d).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    let scale: f64 = a.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
    for _ in 0..SWEEPS {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * scale.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                if a[p][q] == 0.0 {
                    continue;
                }
                // The rotation that zeroes a[p][q] (Golub & Van Loan, the symmetric Schur step).
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                // `signum` of +0.0 is 1: θ = 0 takes the 45° rotation.
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (arp, arq) = (row[p], row[q]);
                    row[p] = c * arp - s * arq;
                    row[q] = s * arp + c * arq;
                }
                // Rows p and q of `a` at once, so by index.
                #[allow(clippy::needless_range_loop)]
                for r in 0..d {
                    let (apr, aqr) = (a[p][r], a[q][r]);
                    a[p][r] = c * apr - s * aqr;
                    a[q][r] = s * apr + c * aqr;
                }
                for row in v.iter_mut() {
                    let (vp, vq) = (row[p], row[q]);
                    row[p] = c * vp - s * vq;
                    row[q] = s * vp + c * vq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i][i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Four points on the axes, twice as far along x: covariance diag(2, 0.5) (by 1/n), so
    /// PC1 is the x axis with 80 % of the variance and PC2 the y axis with 20 %.
    #[test]
    fn axis_aligned_points_by_hand() {
        let pts = vec![
            vec![2.0, 0.0],
            vec![-2.0, 0.0],
            vec![0.0, 1.0],
            vec![0.0, -1.0],
        ];
        let p = project(&pts, 2);
        assert!(
            close(p.explained[0], 0.8) && close(p.explained[1], 0.2),
            "{p:?}"
        );
        assert!(close(p.components[0][0], 1.0) && close(p.components[0][1], 0.0));
        assert!(close(p.components[1][0], 0.0) && close(p.components[1][1], 1.0));
        assert!(close(p.points[0][0], 2.0) && close(p.points[0][1], 0.0));
        assert!(close(p.points[3][0], 0.0) && close(p.points[3][1], -1.0));
    }

    /// The same points rotated by 30° and shifted: the same variances, the components
    /// rotated with them, the projections unchanged up to sign (fixed by the convention).
    #[test]
    fn a_rotation_and_a_shift_change_only_the_directions() {
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let pts: Vec<Vec<f64>> = [[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]]
            .iter()
            .map(|[x, y]| vec![c * x - s * y + 5.0, s * x + c * y - 3.0])
            .collect();
        let p = project(&pts, 2);
        assert!(
            close(p.explained[0], 0.8) && close(p.explained[1], 0.2),
            "{p:?}"
        );
        assert!(
            close(p.components[0][0], c) && close(p.components[0][1], s),
            "{p:?}"
        );
        assert!(close(p.points[0][0].abs(), 2.0) && close(p.points[2][1].abs(), 1.0));
    }

    /// Points on the line y = 2x in 3-D (z constant): one component holds everything, along
    /// (1, 2, 0)/√5; asking for more components than directions of variance gives zeros.
    #[test]
    fn collinear_points_have_one_component() {
        let pts: Vec<Vec<f64>> = (0..7)
            .map(|i| {
                let t = i as f64 - 3.0;
                vec![t, 2.0 * t, 4.0]
            })
            .collect();
        let p = project(&pts, 2);
        assert!(
            close(p.explained[0], 1.0) && close(p.explained[1], 0.0),
            "{p:?}"
        );
        let r5 = 5f64.sqrt();
        assert!(close(p.components[0][0], 1.0 / r5) && close(p.components[0][1], 2.0 / r5));
        assert!(close(p.points[6][0], 3.0 * r5));
        assert!(p.points.iter().all(|q| q[1].abs() < 1e-9));
        // One-dimensional data: a second component does not exist.
        let line: Vec<Vec<f64>> = (0..4).map(|i| vec![i as f64]).collect();
        let q = project(&line, 2);
        assert_eq!(q.explained[1], 0.0);
        assert!(close(q.explained[0], 1.0));
        assert_eq!(project(&[], 2).points.len(), 0);
    }
}
