"""Pure record decoding: KPL deaggregation, the v1 envelope, payload validation."""
