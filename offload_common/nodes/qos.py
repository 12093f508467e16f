"""QoS profiles used across the package, one per kind of traffic."""
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

#: Camera images: newest frame wins, drops are fine (sensor data).
SENSOR_QOS = qos_profile_sensor_data


def sensor_qos(depth: int) -> QoSProfile:
    """Sensor-data QoS (best effort, volatile) with a deeper queue: a busy subscriber (a model
    running on a slow edge CPU) keeps up to ``depth`` frames instead of 5."""
    return QoSProfile(history=qos_profile_sensor_data.history, depth=max(1, depth),
                      reliability=qos_profile_sensor_data.reliability, durability=qos_profile_sensor_data.durability)


def payload_qos(depth: int = 30) -> QoSProfile:
    """Edge -> server payloads: reliable, history covering 2-3 s of messages so that
    repairs over a long-RTT link succeed (see shared notes on DDS over 3 Mbit/s)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


#: Results (labels, detections) and link receipts: reliable, short history.
RESULT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)

#: Monitor decisions: latched, so an edge node started later gets the decision in force.
DECISION_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
