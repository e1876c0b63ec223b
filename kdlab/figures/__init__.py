"""The course's figures, built on the kdlab core (never imported by it).

    plots    static matplotlib figures: the dataset's gallery and masks (notebook 00), softened
             distributions (01), similarity heatmaps, learning curves, Müller projections and
             results over seeds (02), dissection counts and a unit's masks (03, 04),
             explanation maps over their images (04-06)
    widgets  controls that choose among figures drawn up front, so that they work in the
             published book without a kernel: figure_picker (every notebook),
             explanation_picker (05, 06)
    unit_pair  two students' strongest units side by side (04: a scratch and a KD student)
    tables   the table each claims notebook opens with (02, 04, 05, 06): every committed
             run's verdict on its primary claims and manipulation checks (overview)

`widgets` imports `plots`, never the reverse. matplotlib and ipywidgets are imported inside the
functions that draw, so importing these modules stays light.
"""
