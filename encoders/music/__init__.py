"""Music representation: decoding, the 35-d FineDance / CustomDancer features at 30 fps, tempo and beats."""
