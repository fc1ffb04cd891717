"""Motion representation: skeletons, rotations, forward kinematics, the canonical clip record, readers."""
