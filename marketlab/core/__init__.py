"""Bottom layer: schemas, errors, configs, registry, devices and seeds. Imports nothing from marketlab."""
