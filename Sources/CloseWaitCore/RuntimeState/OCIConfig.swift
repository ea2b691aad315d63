/// OCIConfig reads an OCI runtime spec (`config.json`) for the names its annotations carry:
/// containerd's task bundle (`/run/containerd/io.containerd.runtime.v2.task/NS/ID/config.json`,
/// the CRI plugin's `io.kubernetes.cri.*`) and CRI-O's container (`…/overlay-containers/ID/
/// userdata/config.json`, `io.kubernetes.pod.*`, `io.kubernetes.container.name`). A pod's
/// sandbox (pause) container has a pod and no container name.
public enum OCIConfig {
    public static func names(_ bytes: [UInt8]) throws(RuntimeStateError) -> ContainerNames {
        let spec = try RuntimeStateError.object(bytes)
        return ContainerNames.fromKubernetes(ContainerNames.member(spec, "annotations"))
    }
}
