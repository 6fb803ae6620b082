"""CUPED variance reduction from sufficient statistics (§6).

Each visitor's metric y is replaced by y − θ·(x − μ_x), with x the same metric over the 14 days before
first exposure and μ_x the pooled covariate mean. Because x is measured before assignment it has the
same distribution in both arms, so the adjustment leaves the treatment effect unbiased and removes the
part of y's variance that x explains.
"""

from __future__ import annotations

from dataclasses import dataclass

from autopilot.stats.bayes import LiftEstimate, delta_method_lift
from autopilot.stats.sufficient import ArmStats


@dataclass(frozen=True)
class AdjustedArm:
    n: int
    mean: float  # CUPED-adjusted mean of y
    variance: float  # sample variance of the adjusted per-visitor values

    @property
    def var_mean(self) -> float:
        return self.variance / self.n


def cuped_theta(treatment: ArmStats, control: ArmStats) -> float:
    """θ = Cov(y, x)/Var(x), pooled within arms over both arms.

    Within-arm centring keeps the treatment effect on y out of the covariance. When x has no variance
    (e.g. every visitor is new, x ≡ 0) it carries no information and θ = 0: no adjustment.
    """
    co_xy = (treatment.n - 1) * treatment.cov_xy + (control.n - 1) * control.cov_xy
    co_xx = (treatment.n - 1) * treatment.var_x + (control.n - 1) * control.var_x
    scale = max(treatment.sum_x2, control.sum_x2, 1.0)
    if co_xx <= 1e-12 * scale:
        return 0.0
    return co_xy / co_xx


def pooled_covariate_mean(treatment: ArmStats, control: ArmStats) -> float:
    return (treatment + control).mean_x


def cuped_adjust(arm: ArmStats, theta: float, covariate_mean: float) -> AdjustedArm:
    """Mean and variance of y − θ·(x − μ_x): ȳ − θ(x̄ − μ_x) and s²_y − 2θ·s_xy + θ²·s²_x."""
    variance = arm.var_y - 2 * theta * arm.cov_xy + theta * theta * arm.var_x
    return AdjustedArm(
        n=arm.n,
        mean=arm.mean_y - theta * (arm.mean_x - covariate_mean),
        variance=max(variance, 0.0),
    )


def cuped_lift(treatment: ArmStats, control: ArmStats) -> LiftEstimate:
    """Relative lift of the CUPED-adjusted means, with its delta-method standard error."""
    theta = cuped_theta(treatment, control)
    mu_x = pooled_covariate_mean(treatment, control)
    adj_t = cuped_adjust(treatment, theta, mu_x)
    adj_c = cuped_adjust(control, theta, mu_x)
    lift, se = delta_method_lift(adj_t.mean, adj_t.var_mean, adj_c.mean, adj_c.var_mean)
    return LiftEstimate(float(lift), float(se))
