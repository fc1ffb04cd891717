"""CustomDancer encoders: text, music and motion towers, the music-motion blender and the loss.

See ``customdancer.py`` for the full model and its configuration dataclass.
"""
