"""Learning to rank with LightGBM LambdaMART: features (:mod:`.features`), judged groups from a BEIR folder
(:mod:`.data`) or a click log (:mod:`.clicks`), training (:mod:`.fit`), the saved folder (:mod:`.model`) and the
entry point :func:`rankwise.train.ltr` (:mod:`.api`). Served by the ``ltr`` backend
(:mod:`rankwise.rerankers.ltr`).

The package is not called ``ltr``: a submodule ``rankwise.train.ltr`` would replace the function
``rankwise.train.ltr`` on the package once imported.
"""
