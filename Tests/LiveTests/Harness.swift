@_exported import WorkloadSupport
