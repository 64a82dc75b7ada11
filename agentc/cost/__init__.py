"""Hardware catalog and cost models: how long each operator takes on each device."""
