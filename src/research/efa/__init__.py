"""Exploratory factor analysis that agrees with R psych.

Public functions live in submodules and are re-exported here, so users write ``from research import efa``
and ``efa.fit_efa(...)``:

* ``correlation``: Pearson and two-step polychoric correlations, smoothing of non-positive-definite
  matrices (psych ``cor.smooth``);
* ``adequacy``: KMO/MSA and Bartlett's test of sphericity;
* ``nfactors``: parallel analysis, Kaiser, scree data, Velicer's MAP;
* ``fit``: extraction (minres, ml, pa), rotation (oblimin, varimax, promax), psych's ordering and signs,
  communalities, Vaccounted, fit indices, factor scores, Tucker congruence;
* ``reliability``: Cronbach's alpha and omega total.
"""

from .adequacy import *  # noqa: F403
from .correlation import *  # noqa: F403
from .fit import *  # noqa: F403
from .nfactors import *  # noqa: F403
from .reliability import *  # noqa: F403
from .rotation import *  # noqa: F403
