# Scarab in a container: `scarab start` on a data file in the mounted /data volume.
#
#   docker build -t scarab .
#   docker run -v scarab-data:/data -p 3000:3000 scarab                 # one replica, formatted on first start
#   docker run -v scarab-data:/data -p 3000:3000 scarab start --addresses=0.0.0.0:3000 --log-format=json /data/0_0.scarab
#
# The build stage packs the checkout as `npm pack` does (dist/, bin/, the native addon's sources)
# and installs that package into /opt/scarab, which compiles the native addon (io_uring, aligned
# buffers for Direct I/O, AES-NI checksums). The run stage holds Node 24 and /opt/scarab only.
#
# Storage: Docker's default seccomp profile refuses io_uring, so a replica in a container
# normally logs "storage: thread-pool fallback (io_uring unavailable: …)" once and runs on the
# thread pool, still with Direct I/O (O_DIRECT|O_DSYNC). /data must be a volume or bind mount on
# a file system that accepts O_DIRECT (ext4, xfs), not the container's overlay.
FROM node:24-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends g++ make python3 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.build.json binding.gyp LICENSE ./
COPY bin ./bin
COPY native ./native
COPY scripts ./scripts
COPY src ./src
RUN npm ci && npm pack
WORKDIR /opt/scarab
RUN npm init -y >/dev/null && npm install --omit=dev /src/scarab-*.tgz && npm cache clean --force

FROM node:24-bookworm-slim
COPY --from=build /opt/scarab /opt/scarab
ENV PATH=/opt/scarab/node_modules/.bin:$PATH GLIBC_TUNABLES=glibc.malloc.hugetlb=1
VOLUME /data
EXPOSE 3000
# Exec form: scarab is PID 1 and receives docker stop's SIGTERM itself (it logs the commit op it stops at and exits 0).
ENTRYPOINT ["scarab"]
CMD ["start", "--addresses=0.0.0.0:3000", "--format-if-missing", "--cluster=0", "/data/0_0.scarab"]
