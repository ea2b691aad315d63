/// DockerConfigV2 reads Docker's record of a container (`/var/lib/docker/containers/ID/
/// config.v2.json`, mode 0600): `Name` (`/orders`, what `docker ps` shows without the slash)
/// and the labels under `Config.Labels` (Compose's project and service; Kubernetes' pod under
/// cri-dockerd). Nothing else in it is kept (it holds the container's environment).
public enum DockerConfigV2 {
    public static func names(_ bytes: [UInt8]) throws(RuntimeStateError) -> ContainerNames {
        let record = try RuntimeStateError.object(bytes)
        var names = ContainerNames.fromKubernetes(
            ContainerNames.member(ContainerNames.member(record, "Config"), "Labels"))
        if names.name == nil, var name = ContainerNames.value(ContainerNames.member(record, "Name")) {
            if name.bytes.first == UInt8(ascii: "/") { name = ByteString(name.bytes.dropFirst()) }
            names.name = name.isEmpty ? nil : name
        }
        return names
    }
}
