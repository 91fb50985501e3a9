# cinderblock as a container. It manages host storage, so it runs privileged with the host's
# /dev, /sys/kernel/config, /etc/cinder, /var/lib/cinder and /run/lock mounted, on the host network:
#   docker run --privileged --network host -v /dev:/dev -v /sys/kernel/config:/sys/kernel/config \
#     -v /etc/cinder:/etc/cinder:ro -v /var/lib/cinder:/var/lib/cinder -v /run/lock:/run/lock cinderblock
# BASE is any Debian bookworm image with Node 20 (node and npm on PATH): the official one by
# default; test/package/container.sh passes one made locally with debootstrap, as no registry is
# reachable there.
ARG BASE=node:20-bookworm-slim

FROM ${BASE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /usr/lib/cinderblock
COPY package.json package-lock.json binding.gyp tsconfig.json tsconfig.build.json ./
COPY native ./native
RUN npm ci --ignore-scripts --no-audit --no-fund && npx node-gyp rebuild && npm rebuild better-sqlite3
COPY src ./src
COPY drivers ./drivers
COPY bin ./bin
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --no-audit --no-fund

FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends \
      lvm2 thin-provisioning-tools tgt open-iscsi multipath-tools targetcli-fb util-linux qemu-utils \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /usr/lib/cinderblock
COPY --from=build /usr/lib/cinderblock/node_modules ./node_modules
COPY --from=build /usr/lib/cinderblock/build/Release/cinderblock_native.node ./build/Release/
COPY --from=build /usr/lib/cinderblock/dist ./dist
COPY bin ./bin
COPY package.json README.md ./
RUN ln -s /usr/lib/cinderblock/bin/cinderblock.js /usr/bin/cinderblock
ENTRYPOINT ["cinderblock"]
CMD ["serve", "--config-file", "/etc/cinder/cinder.conf"]
