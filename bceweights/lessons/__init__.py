"""The lessons' scaffolding: synthetic data, a tiny model, metrics, live explorers and exercise checkers.

* :mod:`~bceweights.lessons.data`: synthetic segmentation data; :mod:`~bceweights.lessons.cells`:
  touching cells for the U-Net weight map;
* :mod:`~bceweights.lessons.model`: a tiny U-Net and its training loop; :mod:`~bceweights.lessons.metrics`;
* lesson 08: :mod:`~bceweights.lessons.dice` (soft Dice, BCE + Dice), :mod:`~bceweights.lessons.calibration`
  (ranking, calibration and operating points with scikit-learn), :mod:`~bceweights.lessons.rare_class`
  (the experiment), :mod:`~bceweights.lessons.scoreboard` (its table), :mod:`~bceweights.lessons.diagnose`
  (the recall-is-0 checklist);
* :mod:`bceweights.lessons.explore`: the ipywidgets + matplotlib explorers;
* :mod:`bceweights.lessons.exercises`: one checker per exercise, ``check_lessonNN_K``, and the hidden
  solutions behind ``show_solution("NN.K")``.

Imports go one way: this package imports the core (:mod:`bceweights`), the core never imports it;
within it, ``exercises`` imports ``explore``, which imports ``metrics`` and ``cells``. It needs the
``lessons`` extra (matplotlib, ipywidgets, ipympl, tqdm, scipy, scikit-learn): ``pip install "bceweights[lessons]"``.
Importing this package itself loads nothing heavy; each submodule imports what it needs.
"""
