"""The link monitor's library: link estimation from receipts / probes / counters / external
reports, and configuration choice for an SLA (ApproxBit Eq. 1-2). No ROS."""
from offload_common.monitor.chooser import (SLA_ACCURACY, SLA_LATENCY, ChooserSettings, ConfigurationChooser,
                                            Decision, LinkState, Sla)
from offload_common.monitor.calibration import CalibrationSettings, LatencyCalibrator, Prediction
from offload_common.monitor.link_estimator import (EstimatorSettings, LinkEstimate, LinkEstimator,
                                                   read_interface_bytes)
from offload_common.monitor.outages import OutageLog

__all__ = ["SLA_ACCURACY", "SLA_LATENCY", "CalibrationSettings", "ChooserSettings", "ConfigurationChooser", "Decision", "EstimatorSettings",
           "LatencyCalibrator", "LinkEstimate", "LinkEstimator", "LinkState", "OutageLog", "Prediction",
           "Sla", "read_interface_bytes"]
