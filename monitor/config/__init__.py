"""Check files and monitor.yaml: YAML in, validated settings out, or every problem at once.

Each problem names the file, the line and the field, so an on-call engineer can go straight to
it. Values written as ``${NAME}`` come from the environment (``${NAME:-default}`` when unset);
secrets never live in the files, and messages quote what the file says, not what the
environment put there.

The modules, from the top; each uses only those below it, parsing and problems not each other
(pyproject's import-linter checks it):

- ``loader``: a directory -> ``Config`` or ``ConfigError`` (``load_config``)
- ``dependencies``: the checks across files (``depends_on`` names a system, has no cycle)
- ``windows``: the maintenance windows of ``maintenance/*.yaml`` and monitor.yaml, checked
  across files (their systems, their names)
- ``documents``: one file -> its data, with lines, values as written, ``${NAME}`` filled in
- ``parsing``: YAML text -> data within size and depth limits, or why not, in plain words
- ``problems``: ``Problem``, ``ConfigError``, and the words for what the schema refuses
- ``schema``: the pydantic models, durations and rules of what a file may say
"""

from monitor.config.dependencies import dependency_closure
from monitor.config.documents import MAX_FILE_BYTES
from monitor.config.loader import load_config
from monitor.config.problems import ConfigError, Problem
from monitor.config.schema import (
    SETTINGS_FILE,
    Config,
    HttpClient,
    HttpExpect,
    HttpProbe,
    MaintenanceWindow,
    MonitorSettings,
    NamedMaintenanceWindow,
    Org,
    Probe,
    Step,
    SystemConfig,
    TcpProbe,
)

__all__ = [
    "MAX_FILE_BYTES",
    "SETTINGS_FILE",
    "Config",
    "ConfigError",
    "HttpClient",
    "HttpExpect",
    "HttpProbe",
    "MaintenanceWindow",
    "MonitorSettings",
    "NamedMaintenanceWindow",
    "Org",
    "Probe",
    "Problem",
    "Step",
    "SystemConfig",
    "TcpProbe",
    "dependency_closure",
    "load_config",
]
