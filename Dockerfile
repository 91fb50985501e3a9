# cinderblock as a container. It manages host storage, so it runs privileged with the host's
# /dev, /sys/kernel/config, /etc/cinder, /var/lib/cinder and /run/lock mounted, on the host network:
#   docker run --privileged --network host -v /dev:/dev -v /sys/kernel/config:/sys/kernel/config \
#     -v /etc/cinder:/etc/cinder:ro -v /var/lib/cinder:/var/lib/cinder -v /run/lock:/run/lock cinderblock
FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/cinderblock
COPY package.json package-lock.json binding.gyp tsconfig.json tsconfig.build.json ./
COPY native ./native
RUN npm ci --ignore-scripts && npx node-gyp rebuild && npm rebuild better-sqlite3
COPY src ./src
COPY drivers ./drivers
COPY bin ./bin
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      lvm2 thin-provisioning-tools tgt open-iscsi multipath-tools targetcli-fb util-linux \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/cinderblock
COPY --from=build /opt/cinderblock/node_modules ./node_modules
COPY --from=build /opt/cinderblock/build/Release ./build/Release
COPY --from=build /opt/cinderblock/dist ./dist
COPY bin ./bin
COPY package.json README.md ./
ENTRYPOINT ["node", "/opt/cinderblock/bin/cinderblock.js"]
CMD ["serve", "--config-file", "/etc/cinder/cinder.conf"]
