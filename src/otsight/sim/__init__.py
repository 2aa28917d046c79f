"""Virtual plants: realistic industrial traffic with labelled attacks (``otsight simulate``)."""
