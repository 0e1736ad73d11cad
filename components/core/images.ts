import * as path from "path";
import catalogue from "../../images/catalogue.json";

/**
 * The server images every target runs, one folder each under images/. images/catalogue.json is the one
 * place that says which Debian suite an image is built from, how it starts and which user it runs as; the
 * targets and scripts/prepare-machine.sh both read it.
 */
export type ImageName = "etcd" | "postgres" | "haproxy" | "mysql";
export type DebianSuite = "trixie" | "sid";

export interface ImageSpec {
    readonly description: string;
    /** Debian suite of the base image: MySQL 9.7 exists only in sid. */
    readonly suite: DebianSuite;
    /** The image's ENTRYPOINT and default arguments (CMD), as its Dockerfile declares them. */
    readonly entrypoint: readonly string[];
    readonly args: readonly string[];
    /** The uid and gid the server runs as; files a target places are owned by it. */
    readonly uid: number;
}

export const IMAGES: Readonly<Record<ImageName, ImageSpec>> = catalogue as Record<ImageName, ImageSpec>;

/** The folder holding one Dockerfile folder per image, inside the installed package. */
export const IMAGES_DIR = path.join(__dirname, "..", "..", "images");

export const IMAGE_NAMES = Object.keys(IMAGES) as ImageName[];
