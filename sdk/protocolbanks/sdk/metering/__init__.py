"""Pure metering for metered sessions (DePIN: per minute of a rented car): `UsageMeter` counts units of actual
use between start and stop and says how many ticks are due; `MeteredCharge` turns N units into the cumulative
amount owed under a `protocolbanks.sdk.pricing.RateCard`, each unit priced at the time it began."""

from protocolbanks.sdk.metering.charge import MeteredCharge
from protocolbanks.sdk.metering.meter import MeterRounding, MeterVerdict, UsageMeter

__all__ = ["MeterRounding", "MeterVerdict", "MeteredCharge", "UsageMeter"]
