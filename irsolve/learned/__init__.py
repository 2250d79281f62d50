"""The learned side: networks, losses, training, checkpoints and evaluation of trained solvers.

Subpackages and modules, each imported on its own (``import irsolve`` stays light):

- :mod:`irsolve.learned.nets`: the refinement U-Net and the FNO/TFNO base operators;
- :mod:`irsolve.learned.losses`: the progressive spectral and fixed-point losses;
- :mod:`irsolve.learned.training`: configs, objectives, the trainer and calibration;
- :mod:`irsolve.learned.settings`: the declared settings the configs and CLI flags share;
- :mod:`irsolve.learned.checkpoint`: atomic state-dict checkpoints;
- :mod:`irsolve.learned.trained`: trained solvers rebuilt from their checkpoints;
- :mod:`irsolve.learned.evaluate`: metrics of a trained refiner, step by step.

The learned solvers themselves (:class:`irsolve.solvers.Refiner`,
:class:`irsolve.solvers.ResidualCorrector`) are ``FixedPointSolver`` objects in
:mod:`irsolve.solvers`, beside the classical ones.
"""
