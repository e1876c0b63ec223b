"""Each paper's experiments, built from the kdlab core (never imported by it).

    han2023     Han et al., ICML 2023: dissecting KD and LS students (notebook 04)
    e2kd        "Good Teachers Explain", ECCV 2024: few-shot and shortcut experiments (05, 06)
    frozen      the teacher's logits and explanations computed once (notebook 05)
    guidance    a teacher guided by object masks (energy loss), so its maps localise (05)
    shortcut    the control students trained without the shortcut (notebook 06)
    bcos_models deprecated: the B-cos networks are the core's kdlab.bcos
"""
