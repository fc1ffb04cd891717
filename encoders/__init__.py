"""Encoders layer: motion and music representations, and the CustomDancer text / music / motion encoders.

This is the lowest layer of DanceSearch: it depends on no other DanceSearch package.
"""
