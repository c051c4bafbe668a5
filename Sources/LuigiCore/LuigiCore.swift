// LuigiCore is the Swift API in one import: the base layer and the kernels,
// each its own module (see docs/ARCHITECTURE.md for the arrows). Code that
// needs only one kernel imports that module instead.
@_exported import LuigiAlgebraic
@_exported import LuigiBase
@_exported import LuigiRaft
@_exported import LuigiReplicaRaft
@_exported import LuigiTableLog
@_exported import LuigiWatermark
@_exported import LuigiWatermarkRaft
