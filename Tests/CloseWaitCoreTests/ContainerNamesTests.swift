import Testing

@testable import CloseWaitCore

/// The runtimes' state formats (OCI config.json annotations for containerd's CRI plugin and
/// CRI-O, Docker's config.v2.json, containers/storage's containers.json), table-style with
/// inline documents; the fixture tree of real files is read in CloseWaitLinuxTests.
@Suite struct ContainerNamesTests {
    @Test func ociAnnotationsNameThePodAndTheContainer() throws {
        let containerd = try OCIConfig.names(
            Array(
                """
                {"ociVersion":"1.0.2","annotations":{"io.kubernetes.cri.container-name":"app",
                 "io.kubernetes.cri.container-type":"container","io.kubernetes.cri.sandbox-name":"orders-7d9f-x2k4p",
                 "io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-uid":"7d9f3c2a-1b4e-4f6a-9c8d-2e1f0a3b4c5d"}}
                """.utf8))
        #expect(
            containerd
                == ContainerNames(
                    name: "app", podName: "orders-7d9f-x2k4p", podNamespace: "shop",
                    podUID: "7d9f3c2a-1b4e-4f6a-9c8d-2e1f0a3b4c5d"))
        let crio = try OCIConfig.names(
            Array(
                """
                {"annotations":{"io.container.manager":"cri-o","io.kubernetes.container.name":"api",
                 "io.kubernetes.pod.name":"billing-api-5c8d9-qw7rt","io.kubernetes.pod.namespace":"billing"}}
                """.utf8))
        #expect(crio == ContainerNames(name: "api", podName: "billing-api-5c8d9-qw7rt", podNamespace: "billing"))
        // A pod's sandbox: a pod, no container name. Podman's own spec: nothing.
        let sandbox = try OCIConfig.names(
            Array(
                #"{"annotations":{"io.kubernetes.cri.container-type":"sandbox","io.kubernetes.cri.sandbox-name":"p","io.kubernetes.cri.sandbox-namespace":"n"}}"#
                    .utf8))
        #expect(sandbox == ContainerNames(podName: "p", podNamespace: "n"))
        #expect(try OCIConfig.names(Array(#"{"annotations":{"io.container.manager":"libpod"}}"#.utf8)).isEmpty)
        #expect(try OCIConfig.names(Array(#"{"ociVersion":"1.0.2"}"#.utf8)).isEmpty)
    }

    @Test func dockerNamesDropTheSlashAndKeepComposeLabels() throws {
        let names = try DockerConfigV2.names(
            Array(
                """
                {"ID":"f188","Name":"/shop-orders-1","Config":{"Hostname":"f188","Env":["SECRET=x"],
                 "Labels":{"com.docker.compose.project":"shop","com.docker.compose.service":"orders"}}}
                """.utf8))
        #expect(names == ContainerNames(name: "shop-orders-1", composeProject: "shop", composeService: "orders"))
        // cri-dockerd: Kubernetes' labels win over the generated k8s_… name.
        let kube = try DockerConfigV2.names(
            Array(
                """
                {"Name":"/k8s_app_orders_shop_uid_0","Config":{"Labels":{"io.kubernetes.container.name":"app",
                 "io.kubernetes.pod.name":"orders","io.kubernetes.pod.namespace":"shop"}}}
                """.utf8))
        #expect(kube == ContainerNames(name: "app", podName: "orders", podNamespace: "shop"))
        #expect(try DockerConfigV2.names(Array(#"{"Name":"/","Config":null}"#.utf8)).isEmpty)
    }

    @Test func storageListsNameEveryContainer() throws {
        let list = try StorageContainers.names(
            Array(
                """
                [{"id":"6aac","names":["cwprobe"],"metadata":"{}"},{"id":"df0e","names":[]},
                 {"names":["no-id"]},{"id":"b1","names":["", "second"]}]
                """.utf8))
        #expect(list == ["6aac": "cwprobe", "b1": "second"])
    }

    /// Hostile state: not JSON, the wrong shape, control bytes and overlong names.
    @Test func hostileStateIsRefusedOrCutNeverTrusted() throws {
        for bad in ["", "{", "[1,2", "\"x\"", "{\"annotations\":", "nul\u{0}"] {
            #expect(throws: RuntimeStateError.self) { try OCIConfig.names(Array(bad.utf8)) }
            #expect(throws: RuntimeStateError.self) { try DockerConfigV2.names(Array(bad.utf8)) }
        }
        #expect(throws: RuntimeStateError.wrongShape("not a JSON array")) {
            try StorageContainers.names(Array("{}".utf8))
        }
        let long = String(repeating: "a", count: 1000)
        let names = try DockerConfigV2.names(Array("{\"Name\":\"/x\\u001b[31m\(long)\"}".utf8))
        #expect(names.name.map { $0.count <= ContainerNames.maximumBytes && $0.count > 250 } == true)
        var c = ContainerIdentity(runtime: .docker, id: ByteString(String(repeating: "ab", count: 32)))
        c.adopt(names)
        #expect(c.described.hasPrefix("container x\\x1b[31maaa"))
        #expect(!c.described.contains("\u{1b}"))
    }

    static let id = String(repeating: "4b5e", count: 16)

    static func inPod() -> ProcessDetails {
        var d = ProcessDetails(
            identity: ProcessIdentity(pid: 4242, startTime: 9), comm: "java", fdOpen: 50, fdLimit: 1024)
        var c = ContainerIdentity(
            runtime: .containerd, id: ByteString(id), podUID: "7d9f3c2a-1b4e-4f6a-9c8d-2e1f0a3b4c5d")
        c.adopt(ContainerNames(name: "app", podName: "orders-7d9f-x2k4p", podNamespace: "shop"))
        d.container = c
        d.innerPID = 7
        return d
    }

    @Test func everyOutputNamesThePod() throws {
        let d = Self.inPod()
        let status = ProcessStatus(
            details: d, count: 60, peers: [], growthPerMinute: nil, oldestAge: 30, since: 0, predictedExhaustion: nil)
        let entry = AlertMessage.entry(
            AlertEvent(
                kind: .crossed, reason: .count, level: .warning, process: status, total: 60, value: 60,
                threshold: 50, rule: "default"))
        #expect(
            entry.message.hasPrefix("java[4242] (pod shop/orders-7d9f-x2k4p, container app, pid 7 inside) holds 60"))
        #expect(entry.field("CLOSEWAIT_CONTAINER_NAME") == "app")
        #expect(entry.field("CLOSEWAIT_POD_NAME") == "orders-7d9f-x2k4p")
        #expect(entry.field("CLOSEWAIT_POD_NAMESPACE") == "shop")
        #expect(entry.field("CLOSEWAIT_CONTAINER_ID") == Self.id)
        #expect(entry.field("CLOSEWAIT_CONTAINER_HOSTNAME") == nil)

        let snapshot = Snapshot(
            source: .netlink, states: [.closeWait], sockets: [],
            processes: [ProcessEntry(details: d, inodes: [1], peers: [])], statistics: ScanStatistics())
        #expect(SnapshotReport.table(snapshot).contains("shop/orders-7d9f-x2k4p/app pid 7"))
        let json = SnapshotReport.json(snapshot).rendered()
        #expect(json.contains(#""name":"app""#) && json.contains(#""podName":"orders-7d9f-x2k4p""#))
        #expect(json.contains(#""podNamespace":"shop""#))

        let doc = StateDocument(
            statuses: [status], firing: [], total: 60, status: "x", daemonPID: 1, ticks: 1, wallTime: 0, interval: 5)
        let decoded = try StateDocument.decode(doc.json().renderedBytes())
        #expect(decoded.processes[0].podName == "orders-7d9f-x2k4p")
        #expect(decoded.processes[0].containerName == "app")
        #expect(StateDocument.table(decoded, age: 1).contains("shop/orders-7d9f-x2k4p/app pid 7"))

        let page = Metrics.render(
            statuses: [status], firing: [], total: 60, health: Metrics.Health(lastSuccessfulTick: 1), version: "0")
        #expect(page.contains(#"container="app",pod="orders-7d9f-x2k4p",namespace="shop"} 60"#))
    }

    @Test func dockerNamesAndHostnamesShowAsSuch() {
        var c = ContainerIdentity(runtime: .docker, id: ByteString(Self.id))
        #expect(c.described == "container docker:4b5e4b5e4b5e")
        c.hostname = "web-1"
        #expect(c.described == "container docker:4b5e4b5e4b5e, hostname web-1")
        #expect(!c.matchKeys.contains("web-1"))
        c.hostname = nil
        c.adopt(ContainerNames(name: "shop-orders-1", composeProject: "shop", composeService: "orders"))
        #expect(c.described == "container shop-orders-1 (docker:4b5e4b5e4b5e)")
        #expect(c.cell == "shop-orders-1")
        #expect(c.matchKeys.contains("shop-orders-1"))
    }

    @Test func rulesMatchPodsNamespacesAndContainerNames() {
        let d = Self.inPod()
        #expect(Rule(name: "r", matchPod: "orders-*").matches(d))
        #expect(Rule(name: "r", matchNamespace: "shop").matches(d))
        #expect(Rule(name: "r", matchContainer: "app", matchNamespace: "shop").matches(d))
        #expect(!Rule(name: "r", matchNamespace: "kube-system").matches(d))
        #expect(!Rule(name: "r", matchPod: "billing-*").matches(d))
        var host = d
        host.container = nil
        #expect(!Rule(name: "r", matchPod: "*").matches(host))
        #expect(!Rule(name: "r", matchNamespace: "*").matches(host))
        // A user's own subtree is never the cluster's pod.
        var user = d
        user.container?.userManager = "user@1000.service"
        #expect(!Rule(name: "r", matchPod: "*").matches(user))
    }

    @Test func containersTableParses() throws {
        let text = """
            [containers]
            docker_roots = ["/host/var/lib/docker"]
            containerd_roots = "/host/run/containerd"
            hostname = false
            [[rule]]
            name = "shop"
            match_namespace = "shop"
            match_pod = "orders-*"
            count_warning = 10
            """
        let node = ConfigNode.table([
            "containers": .table([
                "docker_roots": .array([.string("/host/var/lib/docker")]),
                "containerd_roots": .string("/host/run/containerd"), "hostname": .bool(false),
            ]),
            "rule": .array([
                .table([
                    "name": .string("shop"), "match_namespace": .string("shop"), "match_pod": .string("orders-*"),
                    "count_warning": .int(10),
                ])
            ]),
        ])
        let settings = try SettingsParser.parse(node, file: "c.toml", text: text).get()
        #expect(settings.containers.docker == ["/host/var/lib/docker"])
        #expect(settings.containers.containerd == ["/host/run/containerd"])
        #expect(settings.containers.storage == ContainerStateRoots().storage)
        #expect(!settings.containers.hostname && settings.containers.names)
        #expect(settings.rules[0].matchPod == "orders-*" && settings.rules[0].matchNamespace == "shop")
        let bad = ConfigNode.table(["containers": .table(["storage_roots": .array([.string("relative/dir")])])])
        let problems = SettingsParser.parse(
            bad, file: "c.toml", text: "[containers]\nstorage_roots = [\"relative/dir\"]\n")
        guard case let .failure(errors) = problems else { Issue.record("accepted a relative root"); return }
        #expect(
            errors.description
                == "c.toml:2: containers.storage_roots: every entry must be an absolute path (\"/var/lib/docker\"), not \"relative/dir\""
        )
    }
}
