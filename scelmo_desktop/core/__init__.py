"""Pure computation on AnnData/numpy: no Qt import anywhere below here."""
