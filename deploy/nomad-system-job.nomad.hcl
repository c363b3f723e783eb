# jobworkerd on every Nomad client: a system job with the raw_exec driver, which runs the
# server as root directly on the host, as the systemd unit does (the isolating drivers would
# put it in a container that may not create cgroups or namespaces). UNTESTED here (no Nomad on
# the build machine, and no offline HCL parser): adapt the paths and constraint.
#
# - raw_exec must be enabled in the client configuration (plugin "raw_exec" { config { enabled = true } }).
# - jobworkerd is installed on the host (npm ci && npm run build in /opt/jobworker) and its
#   certificates are in /etc/jobworker/certs (ca.crt, server.crt, server.key), put there by
#   configuration management; TODO(Vault): a template stanza rendering them from Vault's PKI.
# - Nomad places raw_exec tasks in a cgroup of its own; jobworkerd's job cgroups are created
#   below the server's, so they stay within that task's resources. Give it room.
job "jobworkerd" {
  type = "system"

  group "jobworkerd" {
    network {
      port "grpc" {
        static = 50051
      }
    }

    task "jobworkerd" {
      driver = "raw_exec"

      config {
        command = "/usr/bin/node"
        args = [
          "/opt/jobworker/dist/src/api/main.js", "serve",
          "--listen", "0.0.0.0:50051",
          "--state-dir", "/var/lib/jobworker",
          "--certs", "/etc/jobworker/certs",
        ]
      }

      # Shutdown stops every job (SIGTERM, 10 s grace, then the cgroup is killed).
      kill_signal  = "SIGTERM"
      kill_timeout = "30s"

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
