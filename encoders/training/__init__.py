"""Contrastive training of the CustomDancer encoders on a list of ``ClipExample`` (never the catalog)."""
