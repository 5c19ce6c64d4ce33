"""nbgrader settings of the student lab (`make lab` puts this folder on JUPYTER_CONFIG_PATH).

nbgrader's Assignments panel reads its settings from the notebook folder and the Jupyter
config path, not from the course's nbgrader_config.py. There is no exchange folder shared
with an instructor here: the panel lists the notebook folder's assignments, and its Submit
button says how to hand in (cnncourse/exchange.py).
"""

import os

c = get_config()  # noqa: F821 -- injected by traitlets when nbgrader loads this file

c.CourseDirectory.course_id = "cnncourse"
c.ExchangeFactory.list = "cnncourse.exchange.KitList"
c.ExchangeFactory.submit = "cnncourse.exchange.KitSubmit"
# The panel looks for assignments here; `make lab` names the folder it serves (the server's
# working folder is the course's, one level up).
c.Exchange.assignment_dir = os.environ.get("CNNCOURSE_LAB_DIR", ".")
