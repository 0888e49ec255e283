"""Built-in protocols (registered lazily: nothing is imported until a protocol is used)."""

from __future__ import annotations

from invbench.hookspecs import Register, hookimpl


@hookimpl
def register_protocols(register: Register) -> None:
    """Register the built-in protocols."""
    register("type1", "invbench_plugins.protocols.type1:TypeIProtocol")
    register("type2", "invbench_plugins.protocols.type2:TypeIIProtocol")
    register("sar", "invbench_plugins.protocols.sar:SARProtocol")
    register("image-quality", "invbench_plugins.protocols.image_quality:ImageQualityProtocol")
    register("budget", "invbench_plugins.protocols.budget:BudgetProtocol")
    robustness = "invbench_plugins.protocols.robustness"
    register("geometric", f"{robustness}.geometric:GeometricProtocol")
    register("occlusion", f"{robustness}.occlusion:OcclusionProtocol")
    register("adversarial", f"{robustness}.adversarial:AdversarialProtocol")
    register("aggregation", f"{robustness}.aggregation:AggregationProtocol")
    register("leak", f"{robustness}.leak:LeakProtocol")
