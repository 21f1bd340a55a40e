"""The market explorer of ``gridledger serve``: a local web app over a run folder and its chain."""
